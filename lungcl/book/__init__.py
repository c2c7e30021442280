"""The book build: what ``lungcl book`` runs outside any notebook to execute the chapters and render the book.

- :mod:`.build`: find the chapters, execute those that changed (papermill), render the HTML (jupyter-book)
- :mod:`.parameters`: the form of every chapter parameter (``--set`` values here, each chapter's setup too)
- :mod:`.parameters_page`: the chapters' parameters read from their cells; the "Run it yourself" page
- :mod:`.execution_table`: the front page's table of every chapter's last execution
- :mod:`.guard`: one build per book at a time, and a stop signal that stops the chapter
- :mod:`.pdf`: the whole book as one PDF (headless Chromium)

The build never imports what runs inside a chapter (:mod:`lungcl.chapter`) nor the engine; the runs a
chapter asks for reach the build through :mod:`lungcl.plan`, which reads both.
"""
