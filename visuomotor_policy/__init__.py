"""Visuomotor policies as the goal runner's ``ChunkPolicy``: any LeRobot policy checkpoint
(``modeling_policy.LeRobotChunkPolicy``), its observation/action mapping
(``configuration_policy.PolicyIOConfig``) and a tiny random ACT for tests (``testing``)."""
