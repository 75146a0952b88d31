"""Pure core of the executor stack: typed boundaries, video world models, judges and safety.

Nothing in this package imports rclpy; ROS nodes in ``executor_bringup`` adapt it.
"""
