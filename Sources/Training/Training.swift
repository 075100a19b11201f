// Module Training: see ../shared/DESIGN.md module map.
