"""Compiled detection ops (torch.ops.det.*) and their typed Python wrappers."""
