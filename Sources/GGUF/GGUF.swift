// Module GGUF: see ../shared/DESIGN.md module map.
