"""Files: atomic writes and reads that name the file in their errors."""
