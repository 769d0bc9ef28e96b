"""The revisions of fimg's schema, one file each (a package only so that the wheel carries them)."""
