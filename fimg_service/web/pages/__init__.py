"""One router per area of the interface."""
from fimg_service.web.pages import admin, age, auth, banks, faces, jobs, match

ROUTERS = (auth.router, jobs.router, age.router, match.router, banks.router, faces.router, admin.router)
