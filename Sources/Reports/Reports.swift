// Module Reports: see ../shared/DESIGN.md module map.
