"""One module per architecture family; each module registers its builders with ``@register_model``.

Contributors: read /work/main/AGENTS.md (if present) before writing a family file.
"""
