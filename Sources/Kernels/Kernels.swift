// Module Kernels: see ../shared/DESIGN.md module map.
