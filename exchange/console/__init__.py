"""The web console: every role's work in a browser, in Chinese and English, over the REST and
WebSocket APIs and their role checks (`exchange.console.pages`)."""
