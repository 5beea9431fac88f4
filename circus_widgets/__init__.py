"""ipywidgets dashboards for circus trainers, shows and flies."""
