"""Following the conversation: collection rounds, and attribution of what they read.

- :mod:`chatbot.collect.collector`: the round (read each network, store, record the outcome);
- :mod:`chatbot.collect.attribution`: where a post sits in the chat, and what it is;
- :mod:`chatbot.collect.labels`: the text of a post -> the questions it answers.
"""
