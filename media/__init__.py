"""Media plane: RTP relay, G.711, prompts, recorder, DTMF (filled in by the calls issue)."""
