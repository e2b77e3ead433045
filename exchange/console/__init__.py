"""The web console: every role's work in a browser, in Chinese and English, over the REST and
WebSocket APIs and their role checks. `rendering` makes pages; `signin`, `public`, `holders`
and `staff` are the pages; `routes` says where each is served."""
