package jenkins.scm.api.mixin
interface ChangeRequestSCMHead { String getId() }
