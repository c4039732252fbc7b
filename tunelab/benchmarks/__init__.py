"""Problems with known answers, and a simulator that replays learning curves in simulated time,
so that schedulers are compared in seconds through the very loop users run (rule 7)."""
