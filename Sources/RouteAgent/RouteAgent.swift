// RouteAgent: enrollment, subscription, appliers.
