"""The Outlook add-in served by Mailwarden (docs/addin.md): its manifest and pane pages
(views.py), sign-in by device code (signin.py), and the few API doors the pane needs beyond
the public API (api.py: lookup, contact creation, appointments, sign-out)."""
