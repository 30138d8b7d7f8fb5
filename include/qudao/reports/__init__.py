"""The weekly bulletin (周通报) and the monthly report (月报), from the metrics layer.

``periods`` names the week or month; ``content`` asks the metrics for every table;
``html`` and ``xlsx`` render them; ``deliver`` writes the files and e-mails them.
"""
