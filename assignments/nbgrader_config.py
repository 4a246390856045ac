"""nbgrader's configuration for the Dropout in Depth course. Run every nbgrader command from this folder."""

c = get_config()  # noqa: F821 (nbgrader defines get_config when it reads this file)

c.CourseDirectory.course_id = "dropout-in-depth"

# What replaces a solution region in the student version. This is nbgrader's default, written out because the
# assignments' instructions quote it ("delete the raise NotImplementedError() line").
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograding runs each notebook top to bottom. Assignment 3 trains five small networks in one cell, which takes
# longer than nbgrader's default limit of 30 s per cell on a slow machine.
c.Execute.timeout = 600
