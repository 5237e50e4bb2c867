"""The doctor judged: on gradfail's own failure zoo and on independent programs it has never seen."""
