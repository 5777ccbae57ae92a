"""The gateway: REST and gRPC in front of TorchServe, through one core (docs/gateway.md)."""
