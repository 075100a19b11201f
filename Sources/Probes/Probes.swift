// Module Probes: see ../shared/DESIGN.md module map.
