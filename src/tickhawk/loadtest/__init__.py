"""Load tests: the simulator and the engine in separate processes, measured every second.

``tickhawk loadtest --profile steady|stress|spike|soak|volume|chaos`` (see
``docs/loadtest.md``). The runner (:mod:`tickhawk.loadtest.rig`) starts a
simulator child (:mod:`~tickhawk.loadtest.simproc`) and an engine child
(:mod:`~tickhawk.loadtest.engineproc`), pins them to different cores, steers
the delivered rate (:mod:`~tickhawk.loadtest.control`), and writes
``report.json`` (:mod:`~tickhawk.loadtest.report`) and a self-contained
``report.html`` (:mod:`~tickhawk.loadtest.html`) with an SLO table
(:mod:`~tickhawk.loadtest.slo`).
"""
