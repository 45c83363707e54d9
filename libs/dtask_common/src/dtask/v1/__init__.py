"""Generated protobuf code of the dtask wire contract (package dtask.v1)."""
