"""Data: sources, downloads, the image reader, the Lab pair store and its torch Dataset.

May import: the foundations and ``data``; never ``models`` or the layers above.
"""
