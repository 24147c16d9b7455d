"""chatbot: runs hashtag chats on Mastodon and Bluesky."""

from chatbot.errors import (
    AuthFailed,
    ChatbotError,
    ConfigError,
    NetworkError,
    Problem,
    RateLimited,
    Rejected,
    ScriptError,
    Transient,
)

__all__ = [
    "AuthFailed",
    "ChatbotError",
    "ConfigError",
    "NetworkError",
    "Problem",
    "RateLimited",
    "Rejected",
    "ScriptError",
    "Transient",
]
__version__ = "0.1.0"
