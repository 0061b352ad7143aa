raise RuntimeError("files starting with '_' are not plugins")
