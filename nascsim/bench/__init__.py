"""The regression benchmark (``nascsim bench``): a fixed, versioned suite of cells (:mod:`.suite`)
run through the sweep machinery into a resumable store (:mod:`.run`), each method compared with a
reference method paired per seed and, optionally, this run checked against a saved baseline
(:mod:`.compare`, :mod:`.stats`, :mod:`.baseline`), under a recorded identity of surrogates,
table, suite and engine (:mod:`.identity`), reported as JSON and Markdown (:mod:`.report`).
"""
