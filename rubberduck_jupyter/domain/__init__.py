"""The assistant's domain: who asks (User), about what (Project, CodeFile), in which
Conversation, and what it proposes (CodeSuggestion); the actions on them and who may act."""
