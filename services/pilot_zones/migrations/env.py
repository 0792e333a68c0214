from citypair_pilot_zones.models import Base
from citypair_shared.migrations import run_env

run_env(Base.metadata)
