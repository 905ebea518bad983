"""What happens when a person must answer: reference codes and the acknowledgement, staff
commands and the texts posted to staff channels (handoff), working hours and promised answer
times, the drafts of what to store and send, the e-mail fallback after a reply window closes,
and FAQ drafts from answered tickets. Pure. May import: answering, platform, runtime.
"""
