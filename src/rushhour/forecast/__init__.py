"""Forecasters: ``fit(history) -> self`` then ``predict(start, end) -> Forecast``.

Every forecaster returns, for each step of its frequency in ``[start, end)``, a mean, a standard
deviation and quantiles. History is a :class:`pandas.Series` of counts with a UTC DatetimeIndex; NaN
values are gaps and are ignored when fitting.
"""
