"""umi.evaluate — static (teacher-forced, Table 1) and live (executable tools) evaluation, and reports."""
