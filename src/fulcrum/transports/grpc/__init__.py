"""gRPC door (grpc.aio): parse, authorise, call a service, map errors."""
