"""The gRPC server: assembly, interceptors, admin HTTP port, drain."""
