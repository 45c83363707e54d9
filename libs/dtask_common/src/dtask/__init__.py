"""Namespace of the generated dtask protobuf packages."""
