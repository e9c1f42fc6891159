"""The dashboard's pages, one module each, each with a `render()` that `app.py` hands to `st.navigation`."""
