"""Proof under load and faults: realistic users against a live exchange, and a campaign of
crashes, each ending with the journal checks.

| module | holds |
|---|---|
| `run`, `crash` | the two commands: a time-bounded load run, and the kill and restart campaign |
| `target`, `process`, `postgres` | the server under test, its process, and the PostgreSQL it uses |
| `provision`, `rest`, `cast` | the set-up through the REST API, and who takes part in a run |
| `swarm`, `driver` | locust in a process of its own, and the runners' side of its line protocol |
| `locustfile`, `traders`, `readers`, `holders` | the users |
| `crowd`, `wire` | what one process's users share; their WebSocket and REST clients |
| `verify`, `report` | the checks against the journal, and the figures |

The users live in locust's gevent world, the runners in asyncio: they meet only through the
swarm's standard input and output, and the files it writes.
"""
