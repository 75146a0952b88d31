"""Ground truth of the synthetic camera the calibration tests render through."""

# A webcam-like lens: strong barrel distortion, principal point off centre.
TRUE_FOCAL_PX = 260.0
TRUE_DISTORTION = (-0.25, 0.08, 0.001, -0.0005, 0.0)
TRUE_PRINCIPAL_OFFSET_PX = (3.0, -2.0)
