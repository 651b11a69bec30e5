"""The Board Configuration Service: boards of the active configuration, their issues read in a fixed number of statements, and moving cards through the transition service."""
