"""Data: sources, downloads, the image reader, the Lab pair store and its torch Dataset."""
