"""Running chats: the runner's jobs, and the rooms they work in.

- :mod:`chatbot.run.runner`: lifecycle, booking, one guard around every job;
- :mod:`chatbot.run.sync`: scripts -> planned chats -> units in the store;
- :mod:`chatbot.run.steps`: the chat job (what is due now is done now);
- :mod:`chatbot.run.posting`: a stored unit -> one post on a network, exactly once;
- :mod:`chatbot.run.recaps`: the recap thread, composed when it is due;
- :mod:`chatbot.run.controls`: pause, resume, skip, next, extend, end;
- :mod:`chatbot.run.policy`: the pure decisions behind all of these.
"""
