"""The `dmp` command line for field officers, analysts and operators."""
