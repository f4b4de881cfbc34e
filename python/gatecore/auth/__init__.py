"""Who may call what: the auth stage and the compiled key policies it attaches to requests."""
