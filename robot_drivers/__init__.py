"""Drivers of real robots behind plain Python interfaces (no ROS): the LeRobot arm adapter."""
