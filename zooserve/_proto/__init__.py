"""gRPC messages and stubs generated from ``proto/`` at build time (``generate.py``).

``from zooserve._proto import zooserve_pb2, zooserve_pb2_grpc`` (our service), ``torchserve_pb2`` (TorchServe's
inference API), ``open_inference_pb2`` (the Open Inference Protocol). Their descriptors live in ``POOL``, this
package's own pool, so that tritonclient or KServe, which register the Open Inference Protocol's messages in
protobuf's default pool, can share a process with the gateway.
"""

from google.protobuf import descriptor_pool, empty_pb2

POOL = descriptor_pool.DescriptorPool()
# the one well-known type our protos import
POOL.AddSerializedFile(empty_pb2.DESCRIPTOR.serialized_pb)
