"""Code that serves one chapter (or, for `paper`, one part), in a module named after the chapter's notebook."""
