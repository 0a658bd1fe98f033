"""Who is calling and what they may do: keys, tokens, the caller's identity and the policy.

Every request but the health check carries a bearer token (see docs/security.md):

* a **user token** names a user and a role (``user`` or ``admin``); the embedded server writes
  its owner's into its 0600 ready file, operators issue them on a shared server, and
  ``herdsman login`` gets one with a MUNGE credential;
* a **run token** is minted by the server for one workflow run; the distributor and its jobs
  carry it and may report on that run's attempts and read its workflow, nothing else.
"""
