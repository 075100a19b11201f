// Module Model: see ../shared/DESIGN.md module map.
