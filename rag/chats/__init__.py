"""Saved conversations: the store (:mod:`.store`), exports (:mod:`.export`), feedback as a Q&A set (:mod:`.feedback`)."""

from .export import export, export_name, source_line, to_markdown
from .feedback import FeedbackSets, feedback_sets, gold_answers, gold_source, write_jsonl
from .store import (
                    LOCAL_USER,
                    ChatError,
                    ChatNotFound,
                    ChatStore,
                    Conversation,
                    Feedback,
                    Rating,
                    Turn,
                    answer_from_json,
                    chats_dir,
)

__all__ = ["ChatError", "ChatNotFound", "ChatStore", "Conversation", "Feedback", "FeedbackSets", "LOCAL_USER",
           "Rating", "Turn", "answer_from_json", "chats_dir", "export", "export_name", "feedback_sets",
           "gold_answers", "gold_source", "source_line", "to_markdown", "write_jsonl"]
