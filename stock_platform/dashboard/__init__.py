"""The Streamlit market view and its queries."""
