from citypair_profiles.models import Base
from citypair_shared.migrations import run_env

run_env(Base.metadata)
